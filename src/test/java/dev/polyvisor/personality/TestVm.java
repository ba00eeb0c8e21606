package dev.polyvisor.personality;

import dev.polyvisor.memory.GuestMemory;
import dev.polyvisor.personality.core.PersonalityEnv;

import java.util.List;

/** A small VM for personality tests: 1 MiB of RAM, a 2.5 GHz fake clock at t = 5 s, a recording injector. */
final class TestVm implements AutoCloseable {
    static final long TSC_HZ = 2_500_000_000L;
    static final long UTC_AT_START = 1_700_000_000_123_456_789L;
    final GuestMemory mem = new GuestMemory(1 << 20);
    final FakeClock clock = new FakeClock(TSC_HZ, 5_000_000_000L);
    final RecordingInjector injector = new RecordingInjector();
    final PersonalityEnv env;

    TestVm(int vcpus) {
        env = new PersonalityEnv(mem, clock, injector, vcpus, true, PersonalityEnv.DEFAULT_APIC_BUS_HZ,
                () -> UTC_AT_START + clock.nanos());
    }

    PersonalityStack stack(String spec, String... disabled) { return PersonalityStack.of(spec, List.of(disabled), env); }

    @Override public void close() { mem.close(); }
}
