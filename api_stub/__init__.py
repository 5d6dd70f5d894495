"""The Leadron Analytics HTTP API (the production API, despite the folder's name)."""
