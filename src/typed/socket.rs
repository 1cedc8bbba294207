//! [`DurableSocket`]: both halves together.

use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use durable_ws_core::ClientState;
use futures_core::Stream;
use futures_sink::Sink;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::Error;
use crate::stats::Stats;
use crate::typed::receiver::EventQueue;
use crate::typed::{Codec, Json, Options, Receiver, SendFuture, Sender, SocketEvent};

/// A WebSocket that reconnects, resumes its session and never silently loses a message.
/// Sends `Out`, receives `In`, both through the codec `C`.
///
/// It is a [`Sink<Out>`](Sink) and a [`Stream`] of [`SocketEvent<In>`]; [`split`](Self::split)
/// separates them. Dropping the last half closes the socket (saying goodbye if nothing is
/// pending); no event or reconnection follows.
///
/// Events wait until they are read: keep polling the stream, or split and drop the
/// [`Receiver`] to discard them (a [`Sender`] kept alone holds no events).
pub struct DurableSocket<Out, In, C = Json> {
    sender: Sender<Out, C>,
    receiver: Receiver<In, C>,
}

impl<Out: Serialize, In: DeserializeOwned, C: Codec> DurableSocket<Out, In, C> {
    /// Starts connecting (at once, or when the browser is back online). Fails only for invalid
    /// options; connection problems are events.
    pub fn connect(options: Options) -> Result<Self, Error> {
        let config = options.into_config()?;
        let queue = Rc::new(EventQueue::default());
        let outputs = queue.clone();
        let engine = Rc::new(Engine::start(config, move |output, _| outputs.push(output)));
        let sender = Sender::new(engine.clone(), queue.clone());
        Ok(DurableSocket { sender, receiver: Receiver::new(engine, queue) })
    }

    /// Sends `message`; see [`Sender::send`].
    pub fn send(&self, message: Out) -> SendFuture {
        self.sender.send(message)
    }

    /// Closes for good; see [`Sender::close`].
    pub fn close(&self, code: u16, reason: &str) -> Result<(), Error> {
        self.sender.close(code, reason)
    }

    /// Reconnects at once; see [`Sender::reconnect_now`].
    pub fn reconnect_now(&self) -> Result<(), Error> {
        self.sender.reconnect_now()
    }

    /// Lifecycle state.
    pub fn state(&self) -> ClientState {
        self.sender.state()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.sender.stats()
    }

    /// The session token in hex; see [`Sender::session_token_hex`].
    #[doc(hidden)]
    pub fn session_token_hex(&self) -> Option<String> {
        self.sender.session_token_hex()
    }

    /// The sending and the receiving half, usable from different tasks.
    pub fn split(self) -> (Sender<Out, C>, Receiver<In, C>) {
        (self.sender, self.receiver)
    }
}

impl<Out, In, C> fmt::Debug for DurableSocket<Out, In, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableSocket").field("sender", &self.sender).field("receiver", &self.receiver).finish()
    }
}

impl<Out: Serialize, In, C: Codec> Sink<Out> for DurableSocket<Out, In, C> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().sender).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Out) -> Result<(), Error> {
        Pin::new(&mut self.get_mut().sender).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().sender).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().sender).poll_close(cx)
    }
}

impl<Out, In: DeserializeOwned, C: Codec> Stream for DurableSocket<Out, In, C> {
    type Item = SocketEvent<In>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.get_mut().receiver).poll_next(cx)
    }
}
