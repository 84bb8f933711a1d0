"""beacons: a self-hosted social-listening daemon.

Collectors poll feeds and search endpoints, a matcher finds brand mentions, a
classifier tells support beacons from advocacy and noise, and a router puts
each one in a queue that a support team works from the CLI, API or web page.
"""

__version__ = "0.1.0"
USER_AGENT = f"beacons/{__version__} (+https://github.com/beacons-dev/beacons; self-hosted social listening)"
