"""The web workbench: server-rendered pages (Jinja2) for officials, members and residents.

``api.web.render`` renders a page in the viewer's language with who is signed in;
``api.web.session`` says who the browser is and sends an anonymous one to ``/login?next=…``.
Each page area is a module with its own router (``home``, …), included by ``api.main``.
Cookie sessions write only through these pages' forms, each carrying a CSRF token
(``api.csrf``); the ``/v1`` JSON API stays key-only (docs/api.md, "Access").
"""
