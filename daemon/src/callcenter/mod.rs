//! The call center: ACD queues and agents, IVR menus. Each part is a sans-IO engine that call
//! control (`crate::pbx`) feeds with events and time and whose actions it carries out.

pub mod acd;
pub mod erlang;
pub mod ivr;
pub mod routing;
