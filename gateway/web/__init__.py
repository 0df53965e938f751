"""Browser pages the gateway serves itself: plain HTML, CSS and JS, no CDN and no build step."""
