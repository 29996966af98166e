pub mod check;
pub mod init;
pub mod logs;
pub mod run;
pub mod runs;
pub mod schema;
pub mod show;
