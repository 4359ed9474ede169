"""Wrong: no Upgrade/Connection headers, so nginx passes a plain GET on and the handshake never reaches the app."""

FAILS = (1,)

LOCATION = """
location / {
    proxy_pass http://app;
    proxy_http_version 1.1;
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_read_timeout 1h;
}
"""
