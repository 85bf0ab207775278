//! Records the message and location of panics so an exiting child can report them.
//!
//! The hook chains to the previously installed one (so panics are still printed) and stores
//! the latest panic of each thread in a thread-local. An actor's exit guard is dropped on the
//! same thread while that panic unwinds, and takes the record from there.

use std::cell::RefCell;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

thread_local! {
    static LAST_PANIC: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

/// Installs the recording hook once per process; later calls do nothing.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let record = (message_of(info), location_of(info));
            // try_with: the thread-local may already be gone during thread teardown.
            let _ = LAST_PANIC.try_with(|slot| {
                if let Ok(mut slot) = slot.try_borrow_mut() {
                    *slot = Some(record);
                }
            });
            previous(info);
        }));
    });
}

/// Takes the latest panic recorded on this thread.
pub(crate) fn take_last() -> Option<(String, Option<String>)> {
    LAST_PANIC
        .try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()))
        .ok()
        .flatten()
}

/// The message of a panic payload (`&str` or `String`), as `catch_unwind` hands it over.
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn message_of(info: &PanicHookInfo<'_>) -> String {
    payload_message(info.payload())
}

fn location_of(info: &PanicHookInfo<'_>) -> Option<String> {
    info.location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
}
