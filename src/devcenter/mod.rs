//! The Developer Center API: signing, wire types and the client.
