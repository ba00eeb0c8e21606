/**
 * Obtaining and building guest images: Debian packages fetched with apt-get download, .deb and
 * tar extraction, the initramfs (cpio newc) builder, the probe that runs inside the guest, Debian root
 * filesystem images on a disk (mmdebstrap and mke2fs -d: {@link dev.polyvisor.guest.RootfsImages}, what
 * goes in them: {@link dev.polyvisor.guest.RootfsLayout}), and the per-user cache, whose superseded
 * entries a new build removes ({@link dev.polyvisor.guest.CacheEntries}). Imports no other Polyvisor package.
 */
package dev.polyvisor.guest;
