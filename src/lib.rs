//! durable-ws: a browser WebSocket that reconnects, resumes and never silently loses a message.
#![deny(missing_docs)]
