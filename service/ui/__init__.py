"""The web dashboard at /ui: static files (plain ES modules, no build step) that use only the
public REST API with the browser session's API key."""
