"""Access review campaigns: every current right and mandate scope of an enterprise, confirmed or revoked
by a deadline; unanswered items are flagged (and revoked, if the campaign says so); the outcome is kept
as a report."""
