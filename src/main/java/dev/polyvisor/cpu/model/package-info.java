/**
 * The guest-visible CPU model as data: vendor, family/model/stepping, the advertised feature bits and
 * the descriptive leaves (brand string, cache and address-size leaves). It answers the architectural
 * CPUID leaves only; the hypervisor range 0x40000000-0x4000FFFF is composed by
 * {@code dev.polyvisor.personality.CpuidTable}. Imports nothing outside the JDK.
 */
package dev.polyvisor.cpu.model;
