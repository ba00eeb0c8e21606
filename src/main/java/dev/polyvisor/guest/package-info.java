/**
 * Obtaining and building guest images: Debian packages fetched with apt-get download, .deb and
 * tar extraction, the initramfs (cpio newc) builder, the probe that runs inside the guest, and the
 * per-user cache. Imports no other Polyvisor package.
 */
package dev.polyvisor.guest;
