/**
 * The unknown hypervisor: hypervisor bit set, a signature no kernel knows ("FoobieVisor!"), no ABI
 * element. Imports only {@code personality.core}.
 */
package dev.polyvisor.personality.unknown;
