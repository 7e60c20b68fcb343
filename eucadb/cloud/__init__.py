"""Everything that talks to the cloud. The product path uses only `clients` and `facts`; `local/` is
the embedded cloud (moto server + instance realizer + metadata service) and never a special case."""
