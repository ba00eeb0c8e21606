package dev.polyvisor.vmm;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --device} as QEMU's {@code -device}: the offered test devices, errors for the rest. */
class DeviceSpecTest {
    @Test
    void offeredDevicesParseWithQemuProperties() {
        DeviceSpec d = DeviceSpec.parse("isa-debug-exit,iobase=0xf4,iosize=0x4");
        assertEquals(0xF4, d.number("iobase", 0));
        assertEquals(4, d.number("iosize", 0));
        assertEquals(0x501, DeviceSpec.parse("isa-debug-exit").number("iobase", 0x501), "QEMU's default iobase");
        assertEquals("pc-testdev", DeviceSpec.parse("pc-testdev").name());
        assertEquals("hyperv-testdev", DeviceSpec.parse("hyperv-testdev").name());
    }

    @Test
    void otherDevicesAndPropertiesAreOneLineErrors() {
        for (String bad : new String[] {"hyperv-testdev,x=1", "pci-testdev", "edu", "isa-debug-exit,foo=1", "isa-debug-exit,iosize=9",
                "pc-testdev,x=1"})
            assertThrows(IllegalArgumentException.class, () -> DeviceSpec.parse(bad), bad);
    }
}
