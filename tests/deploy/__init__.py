"""Offline checks of the deployment files: Dockerfile, docker-compose.yml and k8s/ (kustomize)."""
