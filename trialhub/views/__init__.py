"""HTML pages of the tenancy core (one module per area; ``trialhub.page_urls`` routes them)."""
