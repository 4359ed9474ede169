LOCATION = """
location / {
    proxy_pass http://app;
}
"""
