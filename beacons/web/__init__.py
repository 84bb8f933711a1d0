"""The support team's window on the queue: a JSON API and a web page over HTTP.

Standard library ``http.server`` (one thread per connection, one SQLite
connection per request) with Jinja2 templates for the page. Importing this
package is cheap: the server lives in ``beacons.web.server``.
"""
