from reconciler.cli.main import entrypoint

entrypoint()
