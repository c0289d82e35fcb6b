//! Ops candle 0.11 lacks or gets wrong, as candle custom ops with a backward.
