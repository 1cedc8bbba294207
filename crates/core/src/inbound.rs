//! Receive side: in-order delivery, duplicate drop, acknowledgement scheduling.
