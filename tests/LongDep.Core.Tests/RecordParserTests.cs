using System.Text;
using LongDep.Core.Records;

namespace LongDep.Core.Tests;

public class RecordParserTests
{
    private static InputRecord Parse(string line, RecordFieldOptions? fields = null) =>
        new RecordParser(fields).Parse(new RawRecord(3, Encoding.UTF8.GetBytes(line)));

    private static InputRecord ParseBytes(byte[] line) => new RecordParser().Parse(new RawRecord(0, line));

    [Test]
    public void TextRecord_WithIdMetaAndDomain()
    {
        InputRecord r = Parse("""{"id": "doc-1", "text": "héllo\nworld", "meta": {"pile_set_name": "ArXiv", "n": 2}}""");
        Assert.Multiple(() =>
        {
            Assert.That(r.Error, Is.Null);
            Assert.That(r.Index, Is.EqualTo(3));
            Assert.That(r.Id, Is.EqualTo("doc-1"));
            Assert.That(r.Text, Is.EqualTo("héllo\nworld"));
            Assert.That(r.InputIds, Is.Null);
            Assert.That(r.Domain, Is.EqualTo("ArXiv"));
            Assert.That(r.Meta!.Value.GetRawText(), Is.EqualTo("""{"pile_set_name": "ArXiv", "n": 2}"""));
        });
    }

    [Test]
    public void IdsRecord_NumericId_NoMeta()
    {
        InputRecord r = Parse("""{"id": 17, "input_ids": [1, 0, 2147483647]}""");
        Assert.Multiple(() =>
        {
            Assert.That(r.Error, Is.Null);
            Assert.That(r.Id, Is.EqualTo("17"));
            Assert.That(r.InputIds, Is.EqualTo(new[] { 1, 0, int.MaxValue }));
            Assert.That(r.Meta, Is.Null);
            Assert.That(r.Domain, Is.Null);
        });
    }

    [Test]
    public void BothTextAndIds_IdsArePresentAndValid()
    {
        InputRecord r = Parse("""{"text": "abc", "input_ids": [5, 6]}""");
        Assert.That(r.InputIds, Is.EqualTo(new[] { 5, 6 }));
        Assert.That(r.Text, Is.EqualTo("abc"));
    }

    [Test]
    public void CustomFieldsAndDottedDomainPath()
    {
        var fields = new RecordFieldOptions { TextField = "body", IdsField = "tokens", DomainField = "source.name" };
        InputRecord r = Parse("""{"body": "x", "source": {"name": "web"}}""", fields);
        Assert.That(r.Text, Is.EqualTo("x"));
        Assert.That(r.Domain, Is.EqualTo("web"));
        Assert.That(Parse("""{"tokens": [4]}""", fields).InputIds, Is.EqualTo(new[] { 4 }));
    }

    [Test]
    public void MetaWrittenAsJsonString_DomainIsFoundInside()
    {
        InputRecord r = Parse("""{"text": "x", "meta": "{\"pile_set_name\": \"Github\"}"}""");
        Assert.That(r.Domain, Is.EqualTo("Github"));
        Assert.That(r.Meta!.Value.GetString(), Is.EqualTo("""{"pile_set_name": "Github"}"""));
    }

    [TestCase("[1, 2, 3]", "expected a JSON object per line, found an array")]
    [TestCase("42", "expected a JSON object per line, found a number")]
    [TestCase("{\"text\": \"abc\"", "not valid JSON")]
    [TestCase("{\"id\": \"a\"}", "neither 'text'")]
    [TestCase("{\"text\": null}", "neither 'text'")]
    [TestCase("{\"text\": 5}", "field 'text' is a number, expected a string")]
    [TestCase("{\"input_ids\": \"1 2 3\"}", "field 'input_ids' is a string, expected an array of integer token ids")]
    [TestCase("{\"input_ids\": [1, 2.5]}", "input_ids[1] is 2.5, expected an integer token id")]
    [TestCase("{\"input_ids\": [1, \"2\"]}", "input_ids[1] is \"2\", expected an integer token id")]
    [TestCase("{\"input_ids\": [3, -1]}", "input_ids[1] is -1: token ids must be non-negative")]
    [TestCase("{\"input_ids\": [3000000000]}", "input_ids[0] is 3000000000, larger than any token id")]
    [TestCase("{\"text\": \"\\ud800\"}", "cannot be read")]
    public void BadRecords_GetAnErrorNamingTheProblem(string line, string expected)
    {
        InputRecord r = Parse(line);
        Assert.That(r.IsBad, Is.True);
        Assert.That(r.Error, Does.Contain(expected));
        Assert.That(r.Index, Is.EqualTo(3));
    }

    [Test]
    public void BadRecord_KeepsIdAndDomainWhenReadable()
    {
        InputRecord r = Parse("""{"id": "z", "input_ids": [-4], "meta": {"pile_set_name": "Enron"}}""");
        Assert.Multiple(() =>
        {
            Assert.That(r.IsBad, Is.True);
            Assert.That(r.Id, Is.EqualTo("z"));
            Assert.That(r.Domain, Is.EqualTo("Enron"));
        });
    }

    [Test]
    public void InvalidUtf8_IsBad_WithOffset()
    {
        byte[] line = [.. "{\"text\": \"ab"u8, 0xC3, 0x28, .. "\"}"u8];
        InputRecord r = ParseBytes(line);
        Assert.That(r.Error, Does.Contain("not valid UTF-8").And.Contain("offset 12"));
    }

    [Test]
    public void OverLongLine_FromReader_IsBad()
    {
        InputRecord r = new RecordParser().Parse(new RawRecord(9, ReadOnlyMemory<byte>.Empty, "line 10 is 999 bytes long"));
        Assert.That(r.Error, Is.EqualTo("line 10 is 999 bytes long"));
        Assert.That(r.Index, Is.EqualTo(9));
    }

    [Test]
    public void Hash_IsFnv1a64OfTheLineBytes()
    {
        // Published FNV-1a 64 test vectors.
        Assert.Multiple(() =>
        {
            Assert.That(Fnv1a64.Hash(""u8), Is.EqualTo(0xcbf29ce484222325UL));
            Assert.That(Fnv1a64.Hash("a"u8), Is.EqualTo(0xaf63dc4c8601ec8cUL));
            Assert.That(Fnv1a64.Hash("foobar"u8), Is.EqualTo(0x85944171f73967e8UL));
        });
        string line = """{"text": "abc"}""";
        Assert.That(Parse(line).Hash, Is.EqualTo(Fnv1a64.Hash(Encoding.UTF8.GetBytes(line))));
        Assert.That(Parse("[1]").Hash, Is.EqualTo(Fnv1a64.Hash("[1]"u8)));
    }

    [Test]
    public void CheckVocabulary_NamesFirstOutOfRangeId()
    {
        Assert.That(InputRecord.CheckVocabulary([0, 5, 31999], 32000), Is.Null);
        Assert.That(InputRecord.CheckVocabulary([0, 32000, 40000], 32000), Does.Contain("token id 32000 at position 1"));
        Assert.That(InputRecord.CheckVocabulary([-1], 32000), Does.Contain("token id -1 at position 0"));
    }

    [Test]
    public void BadFieldPath_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => new RecordParser(new RecordFieldOptions { DomainField = "meta..x" }));
    }
}
