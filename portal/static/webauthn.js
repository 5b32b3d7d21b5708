// Passkeys (WebAuthn) for the security page and the second login step. No inline script (CSP).
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const fromB64url = (text) => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  };
  const toB64url = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const post = async (url, body) => {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf(), "Accept": "application/json"},
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) { throw new Error(data.detail || response.statusText); }
    return data;
  };
  const credentialJSON = (credential) => {
    const r = credential.response;
    const out = {id: credential.id, rawId: toB64url(credential.rawId), type: credential.type,
                 clientExtensionResults: credential.getClientExtensionResults(), response: {
                   clientDataJSON: toB64url(r.clientDataJSON)}};
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      out.response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return out;
  };
  const register = async (button) => {
    const options = await post(button.dataset.optionsUrl);
    options.challenge = fromB64url(options.challenge);
    options.user.id = fromB64url(options.user.id);
    (options.excludeCredentials || []).forEach((c) => { c.id = fromB64url(c.id); });
    const credential = await navigator.credentials.create({publicKey: options});
    const nameField = document.querySelector("[data-webauthn-name]");
    return post(button.dataset.verifyUrl, {credential: credentialJSON(credential),
                                           name: nameField ? nameField.value : ""});
  };
  const authenticate = async (button) => {
    const options = await post(button.dataset.optionsUrl);
    options.challenge = fromB64url(options.challenge);
    (options.allowCredentials || []).forEach((c) => { c.id = fromB64url(c.id); });
    const credential = await navigator.credentials.get({publicKey: options});
    return post(button.dataset.verifyUrl, {credential: credentialJSON(credential), next: button.dataset.next});
  };
  document.querySelectorAll("[data-webauthn]").forEach((button) => {
    button.addEventListener("click", async () => {
      const error = button.parentElement.querySelector("[data-webauthn-error]");
      if (error) { error.hidden = true; }
      try {
        const result = await (button.dataset.webauthn === "register" ? register(button) : authenticate(button));
        window.location.assign(result.next);
      } catch (problem) {
        if (error) { error.textContent = problem.message; error.hidden = false; }
      }
    });
  });
})();
