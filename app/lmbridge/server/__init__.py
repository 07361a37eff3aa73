"""The aiohttp proxy: app factory, routes, the request pipeline, the runner."""
