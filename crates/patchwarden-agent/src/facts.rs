//! Host facts: OS release, hostname, architecture, kernel, boot time, machine id and whether a
//! reboot is required, all read relative to a root directory.
