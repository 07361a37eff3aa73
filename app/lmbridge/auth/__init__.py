"""Azure sign-in, access tokens and keyring secrets.

- `tokens`: the `TokenProvider` contract and the in-memory token cache that
  refreshes ahead of expiry, one refresh at a time.
- `azure_cli`: tokens from `az account get-access-token`; `az login`,
  `az account show`, `az logout` as asyncio subprocesses.
- `browser`: azure-identity's interactive browser sign-in with a persistent
  token cache and a saved authentication record.
- `secrets`: API keys in the OS keyring, or for this session only when the
  system has no secure keyring.

Each module converts its third-party failures (subprocess, azure-identity,
keyring) into `core.errors` in one place. Tokens and keys never appear in
logs, error messages or files of ours.
"""
