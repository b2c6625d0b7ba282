"""Developer tooling of eksflow: never installed into the platform image (the Dockerfile copies src/eksflow only)."""
