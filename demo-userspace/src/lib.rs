//! demo: watches demand paging from inside the kernel. Layers, from the top: the entry point
//! (`app`), the outputs (`output`), the commands (`walk`, `trace`, `top`), the kernel-facing
//! layer (`kernel`) and the pure model (`model`); each imports only from the layers below it.
//! The binary's `cli` parses the command line and calls `app::run`.

pub mod app;
pub mod kernel;
pub mod model;
pub mod output;
pub mod top;
pub mod trace;
pub mod walk;
