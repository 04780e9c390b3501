"""Abstract interfaces the services depend on, one module per subject; the adapters in
core.adapters implement them. They import only the domain: import from the submodules."""
