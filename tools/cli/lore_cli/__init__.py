"""The `lore` command line: a client of the Lore gateway's REST API (`/v1`)."""
