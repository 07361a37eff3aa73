"""Settings: the settings file and its secrets (`manager`), the page
(`view`) with its upstream and route editors (`form`) and key rows
(`secrets_box`)."""
