"""HTTP routes: each handler parses, authorises, calls the store or the queue and shapes."""
