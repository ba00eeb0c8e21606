/** Bare hardware: no signature, no leaves, hypervisor bit clear (pv-abi.md 3). Imports only {@code personality.core}. */
package dev.polyvisor.personality.bare;
