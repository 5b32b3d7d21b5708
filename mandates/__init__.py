"""Service providers, affiliations with an erkend sociaal secretariaat, provider forms (mandates),
and the provider staff who act for client employers under them."""
