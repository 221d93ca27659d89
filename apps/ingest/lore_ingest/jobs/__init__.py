"""Ingestion jobs: a Dapr Workflow per job (`workflow`), its records in the state store (`store`)."""
