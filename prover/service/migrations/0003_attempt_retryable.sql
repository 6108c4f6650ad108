-- Whether a failed attempt's provider said another provider might succeed: a provider that
-- reported a non-retryable failure is not leased that request again.
ALTER TABLE attempts ADD COLUMN retryable boolean;
