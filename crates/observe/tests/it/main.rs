//! Decoding holds on any input (properties), and the reader reads what a real `log group` rule logs
//! (live, in a network namespace of its own).

mod live;
mod properties;
