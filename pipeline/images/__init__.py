"""Images fetched by URL (img2dataset) and the url -> file table readers use to find them."""
