//! Progress of the one-shot commands (restore, snapshot): a bar when stderr is a terminal, and
//! the caller's periodic lines otherwise (logs, CI, systemd, Kubernetes).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps drawn with indicatif's `template`, or None when stderr is not a terminal.
pub fn terminal_bar(len: u64, template: &str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(len);
        bar.set_style(ProgressStyle::with_template(template).expect("a valid progress template"));
        bar
    })
}
