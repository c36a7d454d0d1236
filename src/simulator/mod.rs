//! A simulator of the Developer Center API and the ACQP consent page.
