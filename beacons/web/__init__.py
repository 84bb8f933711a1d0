"""The support team's window on the queue: a JSON API and a web page over HTTP.

A Starlette application (``beacons.web.app``) served by uvicorn
(``beacons.web.server``), with Jinja2 templates for the page. Importing this
package is cheap: the server lives in ``beacons.web.server``.
"""
