#![doc = include_str!("../README.md")]

pub mod api;
pub mod auth;
pub mod conditions;
pub mod config;
pub mod identity;
pub mod peer;
pub mod store;
