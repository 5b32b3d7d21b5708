"""The structured-message channel (bestandsoverdracht): a message file with a detached CMS
signature, verified, validated against its XML schema, authorised per employer by the decision
point, and applied whole or not at all. Message types plug in through filechannel.registry."""
