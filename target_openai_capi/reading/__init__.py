"""Reading Singer input: lines to messages (reader.py), records decoded only where read."""
