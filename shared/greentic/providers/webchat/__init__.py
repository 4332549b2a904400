"""WebChat: the Direct Line 3.0 subset, a transcript per conversation in JetStream, a demo page."""
