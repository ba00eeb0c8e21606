/**
 * One virtual clock per VM: TSC, PIT, LAPIC timer, RTC and every pvclock derive from it; realtime and
 * icount modes, and the timer queue of virtual-nanosecond deadlines. Imports nothing of Polyvisor.
 */
package dev.polyvisor.clock;
