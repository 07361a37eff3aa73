"""Azure: sign-in state and actions per Azure AI Foundry upstream
(`manager`: the accounts; `view`: the page)."""
