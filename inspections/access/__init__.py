"""Who may do what: role groups, API tokens, the authentication audit trail."""
