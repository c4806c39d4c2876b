"""HTTP routes: thin handlers that validate, call a service function and return a typed body."""
