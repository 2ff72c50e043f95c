"""The HTTP ingress: verifies signed webhooks, validates them and stores them for the workers.

Imports `core`, `config` and `store`; never `worker` or `handlers`. `ingress.app.create_app` is the factory
uvicorn runs (`uvicorn --factory ingress.app:create_app`).
"""
